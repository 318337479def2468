// Command tinybin prints a fixed line; BuildImage's WithGoBinary test puts
// it in a FROM scratch image to prove the binary is static.
package main

import "fmt"

func main() { fmt.Println("tinybin ok") }
