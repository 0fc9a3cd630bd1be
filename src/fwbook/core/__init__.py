"""The paper and nothing else: data, models, the training loop, the record format. Imports nothing outside core."""
