"""CPU sharing: tasks, scheduler, sandboxed workers."""
