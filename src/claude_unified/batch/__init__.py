"""Batch jobs: many prompts, one fresh conversation each, on any backend, or through the
Message Batches API.

- ``_run``       ``run_batch``, ``iter_batch``, ``run_batch_sync``, ``BatchRun``
- ``_types``     ``BatchItem``, ``BatchResult``
- ``_engine``    how items run for the backend the config resolves to
- ``_cli_pool``  warm CLI processes, reset between items
- ``_limiter``   rate-limit backoff shared by the items in flight
- ``_io``        JSONL input and output, shards, resumable result files
- ``_progress``  progress lines for the ``batch`` command
- ``_api_run``   ``run_via_batches_api``; ``_api_client`` (``BatchesClient``), ``_api_plan``
  (items → batch requests) and ``_api_wire`` (its typed frames)

The public names are re-exported by ``claude_unified`` itself (``cu.run_batch``…), which
loads each module on first use.
"""
