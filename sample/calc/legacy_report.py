"""Old text report generator. No test imports this module (an orphan for the demo)."""

from calc.stats import mean, median

HEADER = "calc report"


def render(values):
    values = list(values)
    lines = [HEADER, "=" * len(HEADER)]
    lines.append("count:  %d" % len(values))
    lines.append("mean:   %.2f" % mean(values))
    lines.append("median: %.2f" % median(values))
    return "\n".join(lines)


if __name__ == "__main__":
    print(render([1, 2, 3, 4]))
