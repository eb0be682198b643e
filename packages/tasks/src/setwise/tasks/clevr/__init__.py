"""CLEVR object detection and full-scene prediction with DSPN and four set creators."""
