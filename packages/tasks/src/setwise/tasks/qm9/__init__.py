"""QM9 molecular graph generation with Set2GraphVAE and the four set creators (paper 2,
section 5.4, Table 5, appendix D.3)."""
