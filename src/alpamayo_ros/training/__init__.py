"""Training of the small reasoning driver (issue 7): vocabulary, data, losses and the checkpoint it is saved as.

Nothing here is imported by the node at run time except ``driver`` (the DrivingModel over a saved checkpoint).
"""
