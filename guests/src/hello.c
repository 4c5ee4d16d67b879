#include "runtime.h"

int main(void)
{
    print("Hello from vmhost guest!\n");
    printf("hart %lu\n", rdhartid());
    return 0;
}
