"""The security review example: four specialist agents review a deliberately vulnerable sample
app in parallel, a synthesizer assesses the risk, and a critical finding gets a fix that is
verified by the app's own tests in a sandbox and applied only with a human's approval.

``agents`` (the agents, their offline scripts and the ``sample-app-tests`` check), ``tools``
(read-only code tools and ``apply_fix``, confined to ``$SECURITY_REVIEW_ROOT``), ``check``,
``models`` (typed findings, assessment, fix), ``workflow`` (``SecurityReviewWorkflow``),
``sample_app/`` (the code under review, with its tests) and ``advisories.json``. Run it with
``python -m examples.security_review`` (``make review``); see docs/security-review.md.
"""
