"""The pipeline's processing steps as composite PTransforms: decode, filter, classify, route."""
