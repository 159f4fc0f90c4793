"""Inference drivers returning ArviZ DataTrees: MAP, NUTS (NumPyro, BlackJAX), VI, evidence.

Planned contents (issues 4 and 5).
"""
