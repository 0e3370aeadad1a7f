#include <stdio.h>
#include <fmt.h>

int broken_value(void);

int main(void) {
    printf("app: %d\n", broken_value());
    return 0;
}
