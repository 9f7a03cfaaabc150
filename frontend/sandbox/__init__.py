"""The document sandbox: uploaded files are parsed in bounded worker processes."""
