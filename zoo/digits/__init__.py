"""A small digits classifier: the zoo's first experiment, and later the feature network that scores
moving-digits samples (class accuracy, Fréchet distance) for W.A.L.T."""
