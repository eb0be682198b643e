"""GNN readout on OGB molecules (paper 1, section 5.3): task, model, data, metric."""
