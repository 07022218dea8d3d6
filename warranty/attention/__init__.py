"""The attention queue: things a person must look at."""
