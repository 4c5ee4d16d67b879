/* Proves a non-zero exit code travels through the syscon device to the host. */
#include "runtime.h"

int main(void)
{
    print("exiting with code 3\n");
    return 3;
}
