"""Training: validated arguments, detached launcher, worker callbacks, live readers, GPU sampling, alerts."""
