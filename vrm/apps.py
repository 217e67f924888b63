from django.apps import AppConfig


class VrmConfig(AppConfig):
    name = "vrm"

    def ready(self) -> None:
        from django_tasks.signals import task_finished

        from vrm import checks  # noqa: F401  (registers the system checks)
        from vrm.logs import task_finished as log_task

        # One JSON line per finished background task, in every process that runs tasks.
        task_finished.connect(log_task, dispatch_uid="vrm.logs.task_finished")
