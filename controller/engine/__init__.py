"""The control engine: site state, mode proposals, arbitration, the safety envelope and the control loop.

Pure, synchronous and clock-injected (the time is an argument); the async control loop is `controller.control_loop`.
"""
