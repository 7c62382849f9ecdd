"""Console views, one module per section. Each view parses input, calls a service, renders."""
