"""Pieces every package of the platform shares (the data plane `jobs`, the control plane `advising`, the
Lambda functions and the read API). It depends on nothing but the standard library, so it ships to the
cluster beside `jobs` and into every Lambda package that needs it."""
