"""The control engine: site state, proposals, arbitration, the safety envelope and one decision (`Decider`).

Pure, synchronous and clock-injected (the time is an argument); the async control loop is `controller.control_loop`.
It imports only the kernel (`controller.core`): modes reach it as `Proposer`s, limits as values.
"""
