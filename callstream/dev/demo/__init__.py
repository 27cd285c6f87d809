"""`callstream run`: the whole pipeline on the local stack with the simulator, live."""
