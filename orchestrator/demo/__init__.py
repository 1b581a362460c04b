"""Demo campaign: f-I curves of a Hodgkin-Huxley soma simulated with NEURON."""
