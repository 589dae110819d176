"""Character-level text prediction (Graves 2013, section 3): a stacked LSTM with skip connections."""
