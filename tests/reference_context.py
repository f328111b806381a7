"""The reference extension's (sd-webui-animatediff v1.13.1) uniform context
scheduler, written from the rules in shared/reference/params.md section 5 and
independent of motion_module.context: duplicates kept, short clips padded to
the context, and mode N's postponed first window dropped when no further
wrapping window comes. Tests hold our scheduler against it."""

import math


def halving(step):
    return int(format(step, "064b")[::-1], 2) / 2 ** 64


def uniform_windows_reference(L, step, B, O, S, mode):
    if L <= B:
        return [list(range(B))]
    levels = min(S, math.ceil(math.log2(L / B)) + 1)
    h = halving(step)
    pad = int(round(L * h))
    out = []
    for k in range(levels):
        d = 2 ** k
        stop = L + pad + (0 if mode == "A" else -O)
        windows = [[(j + i * d) % L for i in range(B)] for j in range(int(h * d) + pad, stop, B * d - O)]
        if mode != "N" or d != 1:
            out += windows
            continue
        waiting = False
        for w in windows:
            drops = [i for i in range(1, B) if w[i] < w[i - 1]]
            if not drops:
                out.append(w)
            elif waiting:
                waiting = False
                out.append(list(range(B)))
            elif drops[0] < B - O:
                out += [list(range(L - B, L)), list(range(B))]
            else:
                waiting = True
                out.append(list(range(L - B, L)))
    return out
