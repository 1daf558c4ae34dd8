"""The "GO project" link on the task page, to the project's page in the GO web app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

#: The XCom key under which the provider's tasks push their project's page before they wait.
PROJECT_URL_KEY = "project_url"


class ProteusProjectLink(BaseOperatorLink):
    """Link a task to its project's page in the GO web app.

    The task pushes the page's URL (built from the connection extra ``web_url``) to XCom before it
    waits, so the link works while the project still runs.
    """

    name = "GO project"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = XCom.get_value(ti_key=ti_key, key=PROJECT_URL_KEY)
        return url if isinstance(url, str) else ""
