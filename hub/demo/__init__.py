"""``hub demo``: a whole scripted gameday on the embedded stack (see ``hub.demo.run``)."""
