"""setwise.tasks: datasets, models, training loops and the `setwise` command."""
