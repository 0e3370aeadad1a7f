#include <stdio.h>
#include <stdlib.h>
#include <core.h>

int main(int argc, char **argv) {
    int values[16], count = 0;
    for (int i = 1; i < argc && count < 16; i++) values[count++] = atoi(argv[i]);
    printf("%d\n", core_sum(values, count));
    return 0;
}
