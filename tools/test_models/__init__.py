"""The builders of tools/build_test_models.py, one module per family of tiny test models."""
