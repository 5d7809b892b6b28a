<?php
// A PHP fatal error (call to an undefined function) before any output: the server must answer 500 and log the error.
this_function_does_not_exist();
echo 'never printed';
