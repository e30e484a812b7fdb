"""The probe layout's entry point; probes replace it with their script."""


def main(ctx: object) -> None:
    print("component ran", ctx)
