"""The floor every other sepconv package stands on: argument checks, atomic file writes, the
timing statistics, context managers that restore what they change (eval mode, threads),
the console and figures. It imports nothing else from sepconv."""
