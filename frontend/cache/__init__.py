"""The result cache: model outputs kept by hash(model, revision, options, input)."""
