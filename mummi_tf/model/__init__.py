"""The paper's model (MuMMI, arXiv 2107.02339): networks, the experts' product-of-experts fusion
(eq. 11), the multimodal state-space model, the objectives (InfoNCE and its kin), the world
model, behaviour learning in imagination and the agent. It imports nothing of ``run/`` or
``cli/`` (tests/test_layout.py)."""
