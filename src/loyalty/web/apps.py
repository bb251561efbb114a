from django.apps import AppConfig


class WebConfig(AppConfig):
    """The member center's and the operations console's pages; an app so that their static files
    (under loyalty/web/static/) are found by the staticfiles finders. No models."""

    name = "loyalty.web"
    label = "loyalty_web"
    verbose_name = "Loyalty pages"
