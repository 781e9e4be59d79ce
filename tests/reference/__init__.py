"""An independent, pure-Python reading of the data contract, used as the oracle of the differential tests."""
