"""Run the exercise topology in Mininet with P4Runtime switches (see __main__)."""
