"""SetMNIST autoencoding with DSPN and TSPN and the four set creators (paper 2, section 5.1)."""
