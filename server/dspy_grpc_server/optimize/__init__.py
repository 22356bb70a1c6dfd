"""Datasets, metrics, evaluation and optimizers (DSPy's teleprompters), independent of gRPC and storage.

Everything here works on module specs and examples in memory; what is finished along the way is
reported through :class:`~.journal.JobJournal`, which the app layer backs with the job store.
"""
