"""Content safety: what a classifier says of a text, in Azure's categories and severities.

Policies (which severities block, per category and direction), blocklists, prompt shields and the
wire annotations build on these types; classifiers implement :class:`Classifier`.
"""

from stockade.safety.base import Category, Classifier, Severity

__all__ = ["Category", "Classifier", "Severity"]
