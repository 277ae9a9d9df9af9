"""The control engine: site state, mode proposals, arbitration, the safety envelope and the control loop.

Everything here but `loop.py` is pure, synchronous and clock-injected (the time is an argument).
"""
