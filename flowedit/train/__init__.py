"""Training the models this package ships: ``python -m flowedit.train digits`` retrains ``digits-sd3``
(:mod:`.digits`) from scratch on a CPU."""
