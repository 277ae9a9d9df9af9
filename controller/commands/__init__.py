"""One module per `flux-edge` command."""
