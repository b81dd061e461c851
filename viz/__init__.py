"""Pictures and the command line: plots of training runs and the ``backproplab`` CLI."""
