"""harden's custom checkov checks, passed to checkov as ``--external-checks-dir``.

checkov imports every ``.py`` file here (except dunder files) as a top-level module named after
the file, so every file is prefixed ``harden_`` to keep clear of other modules. Nothing here may be
imported by the product itself except ``harden_iam`` (pure Python): checkov lives in its own
environment and is run as a subprocess (see ``provisioner/scan.py``).
"""
