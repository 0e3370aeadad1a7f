#include <core.h>

int broken_value(void) {
    int values[] = {1, 2, 3}
    return core_sum(values, 3);
}
