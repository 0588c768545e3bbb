"""Files and batch jobs, as Azure OpenAI's `/openai/files` and `/openai/batches` have them.

Knows nothing of HTTP. ``files`` keeps uploads sealed in the store (``sealing``) and checks a
batch input file when it arrives (``jsonl``); ``jobs`` creates, lists and cancels batches;
``runner`` runs their lines on every replica that serves, as backfill under the deployments' rate
limits, claiming lines in the store so that no line runs twice and none is lost.
"""
