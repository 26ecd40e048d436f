"""The report: Table 2 beside the paper's numbers with verdicts a statistician would sign, the paper's
conclusion tested, the reference's own episodes as evidence, figures and deviations.

It reads only per-seed records (aqil/published.py), never the training code: ``records`` loads and
cross-checks them, ``tables`` computes every number, ``render`` writes the text, ``plots`` the
figures, ``build`` runs the two DVC stages (your own run's report, and the published one).
"""
