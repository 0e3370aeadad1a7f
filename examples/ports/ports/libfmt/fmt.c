#include <stdio.h>
#include <core.h>
#include "fmt.h"

int fmt_total(char *out, size_t size, const int *values, int count) {
    return snprintf(out, size, "total=%d", core_sum(values, count));
}
