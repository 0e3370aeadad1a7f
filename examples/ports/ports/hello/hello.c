#include <stdio.h>
#include <fmt.h>

int main(void) {
    int values[] = {1, 2, 3, 4};
    char line[64];
    fmt_total(line, sizeof line, values, 4);
    printf("hello: %s\n", line);
    return 0;
}
