"""One folder per task (``medgen/tasks/<name>/``), each declaring a ``TASK``
(:class:`medgen.task.TaskSpec`); ``medgen.registry.TASKS`` lists them."""
