"""The holdout experiment: arms and visitor events."""
